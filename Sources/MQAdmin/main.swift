print("mqadmin: not built yet")
