#!/usr/bin/env bash
# One-time Vault setup for Integration Service, run by an operator with a Vault token that may
# manage auth methods, mounts and policies (VAULT_ADDR and VAULT_TOKEN in the environment):
#   - enables AppRole and the transit engine (and KV v2 at secret/) if they are not enabled yet
#   - creates the transit key `integration-service`: aes256-gcm96, derived (per-connection context),
#     rotated by Vault every 7 days (auto_rotate_period=168h); old versions stay decryptable
#   - writes the policy ops/vault/integration-service.hcl
#   - creates the AppRole, prints its role_id, and a response-WRAPPED secret_id: the wrapping token
#     is single-use and expires in 10 minutes, so the secret_id itself is never printed or logged.
# Unwrap where the daemon's Secret is made:  vault unwrap -field=secret_id <wrapping_token>
# Idempotent: running it again updates the policy and role and prints a new wrapped secret_id.
set -euo pipefail

: "${VAULT_ADDR:?set VAULT_ADDR}"
KEY=${TRANSIT_KEY:-integration-service}
ROLE=${APPROLE:-integration-service}
POLICY_FILE=$(dirname "$0")/integration-service.hcl

enabled() { vault "$1" list -format=json | grep -q "\"$2/\""; }

enabled auth approle || vault auth enable approle
enabled secrets transit || vault secrets enable transit
enabled secrets secret || vault secrets enable -path=secret kv-v2

if vault read -format=json "transit/keys/$KEY" >/dev/null 2>&1; then
  # Existing key: make sure it rotates weekly; type and derivation cannot change after creation.
  vault write "transit/keys/$KEY/config" auto_rotate_period=168h >/dev/null
else
  vault write "transit/keys/$KEY" type=aes256-gcm96 derived=true auto_rotate_period=168h >/dev/null
fi
# Refuse deletion of the key (losing it loses every stored session).
vault write "transit/keys/$KEY/config" deletion_allowed=false >/dev/null

vault policy write "$ROLE" "$POLICY_FILE"

# Tokens live 1 h and renew up to 4 h, then the daemon logs in again with role_id + secret_id.
# secret_id lives 30 days: rotate it monthly (docs/operations.md#key-rotation).
vault write "auth/approle/role/$ROLE" \
  token_policies="$ROLE" \
  token_ttl=1h \
  token_max_ttl=4h \
  secret_id_ttl=720h \
  secret_id_num_uses=0 \
  bind_secret_id=true >/dev/null

echo "role_id:  $(vault read -field=role_id "auth/approle/role/$ROLE/role-id")"
echo "wrapped secret_id (single use, 10 min):"
vault write -wrap-ttl=10m -field=wrapping_token -f "auth/approle/role/$ROLE/secret-id"
echo
