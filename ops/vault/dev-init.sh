#!/bin/sh
# ============================================================================================
#  DEVELOPMENT ONLY. This initialises the compose Vault with ONE unseal key and writes that key
#  and the root token to a local file (ops/vault/.dev-keys/init.json, mode 0600, git-ignored), then
#  unseals Vault with it on every `docker compose up`. Anyone who reads that file owns the Vault.
#  PRODUCTION UNSEALS DIFFERENTLY: auto-unseal through a cloud KMS or an HSM, or Shamir shares
#  (e.g. 5 keys, threshold 3) held by different people and never stored next to Vault; the root
#  token is revoked after setup. See docs/operations.md#vault.
# ============================================================================================
# Then it sets up what the daemon needs, as ops/vault/setup-approle.sh does for a real Vault:
# transit key, KV v2 at secret/, the policy, an AppRole whose role_id and secret_id are the
# compose defaults (VAULT_ROLE_ID / VAULT_SECRET_ID), and the daemon's static secrets in KV
# (JWT_SECRET, TELEGRAM_API_HASH, KEYRING_KEY if .env has one) so the daemon reads them from Vault rather than from its env.
set -eu
export VAULT_ADDR=${VAULT_ADDR:-http://vault:8200}
KEYS_DIR=${KEYS_DIR:-/vault/keys}
KEYS_FILE=$KEYS_DIR/init.json
umask 077

until vault status -format=json >/dev/null 2>&1 || [ $? -eq 2 ]; do sleep 1; done

if vault status -format=json | grep -q '"initialized": false'; then
  echo "vault-init: initialising (1 key share: development only, see the note at the top of this script)"
  vault operator init -key-shares=1 -key-threshold=1 -format=json >"$KEYS_FILE.tmp"
  mv "$KEYS_FILE.tmp" "$KEYS_FILE"
  chmod 600 "$KEYS_FILE"
fi
[ -f "$KEYS_FILE" ] || { echo "vault-init: Vault is initialised but $KEYS_FILE is missing; unseal it by hand" >&2; exit 1; }
[ "$(stat -c %a "$KEYS_FILE")" = 600 ] || { echo "vault-init: $KEYS_FILE must be mode 0600" >&2; exit 1; }

flat=$(tr -d '\n ' <"$KEYS_FILE")
key=$(echo "$flat" | sed -n 's/.*"unseal_keys_b64":\["\([^"]*\)".*/\1/p')
if vault status -format=json | grep -q '"sealed": true'; then
  vault operator unseal "$key" >/dev/null
  echo "vault-init: unsealed"
fi

VAULT_TOKEN=$(echo "$flat" | sed -n 's/.*"root_token":"\([^"]*\)".*/\1/p')
export VAULT_TOKEN
vault secrets list -format=json | grep -q '"transit/"' || vault secrets enable transit
vault secrets list -format=json | grep -q '"secret/"' || vault secrets enable -path=secret kv-v2
vault auth list -format=json | grep -q '"approle/"' || vault auth enable approle
vault read transit/keys/integration-service >/dev/null 2>&1 ||
  vault write transit/keys/integration-service type=aes256-gcm96 derived=true auto_rotate_period=168h >/dev/null
vault policy write integration-service /vault/policy/integration-service.hcl >/dev/null
vault write auth/approle/role/integration-service token_policies=integration-service token_ttl=1h token_max_ttl=4h >/dev/null
vault write auth/approle/role/integration-service/role-id role_id="$DAEMON_ROLE_ID" >/dev/null
vault list -format=json auth/approle/role/integration-service/secret-id 2>/dev/null | grep -q . ||
  vault write auth/approle/role/integration-service/custom-secret-id secret_id="$DAEMON_SECRET_ID" >/dev/null
# The daemon's static secrets (src/secrets-from-vault.ts reads secret/data/integration-service/config).
vault kv get secret/integration-service/config >/dev/null 2>&1 ||
  vault kv put secret/integration-service/config JWT_SECRET="$JWT_SECRET" TELEGRAM_API_HASH="${TELEGRAM_API_HASH:-}" >/dev/null
# One KEYRING_KEY for every node of the cluster profile: each reads it from this same entry.
if [ -n "${KEYRING_KEY:-}" ]; then
  vault kv patch secret/integration-service/config KEYRING_KEY="$KEYRING_KEY" >/dev/null
fi
echo "vault-init: ready (transit key, KV, AppRole integration-service)"
