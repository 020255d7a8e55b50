// The nodes wire protocol; see RemotingCommand.swift.
