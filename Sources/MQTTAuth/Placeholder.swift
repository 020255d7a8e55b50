// Authentication; see AuthManager.swift.
