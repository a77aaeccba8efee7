# Vault server for the compose stack: file storage in the `vault-data` volume (survives restarts,
# unlike dev mode's memory), no TLS on the compose network only. Production: raft or a managed
# Vault, TLS on the listener, and auto-unseal (docs/operations.md#vault).
storage "file" {
  path = "/vault/file"
}

listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = 1
}

api_addr      = "http://vault:8200"
disable_mlock = false
ui            = true
