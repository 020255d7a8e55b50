print("mqnamesrv: not built yet")
