# Vault policy for the Integration Service daemon (AppRole `integration-service`).
# Least privilege: use its own transit key (encrypt, decrypt, rewrap, read its metadata) and read
# its own KV v2 path. It cannot create, rotate, reconfigure, export or delete keys: rotation is
# Vault's own (auto_rotate_period=168h, set by setup-approle.sh) or an operator's
# (docs/operations.md#key-rotation). Checked by tests/ops/vault-policy.test.ts.

# Session strings, auth keys and bot tokens: envelope operations only. The key is derived
# (derived=true), so every call carries a context and ciphertexts are bound to their connection.
path "transit/encrypt/integration-service" {
  capabilities = ["update"]
}

path "transit/decrypt/integration-service" {
  capabilities = ["update"]
}

# The background rewrap job moves old ciphertexts to the newest key version after a rotation.
path "transit/rewrap/integration-service" {
  capabilities = ["update"]
}

# Start-up check: the key exists, is aes256-gcm96 + derived, and which version is latest.
path "transit/keys/integration-service" {
  capabilities = ["read"]
}

# Its own static configuration (e.g. the Telegram api_hash), KV v2 mounted at secret/.
path "secret/data/integration-service/*" {
  capabilities = ["read"]
}

path "secret/metadata/integration-service/*" {
  capabilities = ["read", "list"]
}
