"""How `omnistock serve` runs the app: the HTTP protocol uvicorn speaks (with read timeouts for
slow or silent clients) and the ties that make workers die with their parent."""
