-- The local keyring's key versions (src/crypto/local-keyring.ts), shared by every node on this
-- database: each data key is stored only wrapped (AES-256-GCM) by the master key, KEYRING_KEY, so
-- every node started with the same KEYRING_KEY decrypts every secret, and a node with another one
-- cannot open a single row (it refuses to start). With Vault this table stays empty: the transit key
-- is already shared. Rows are only ever added (a rotation adds the next version); a keyring file of
-- an earlier release is imported once, byte for byte, with its versions and creation times.
create table keyring_versions (
  version     integer primary key check (version > 0),
  -- When the version was made (by a rotation, or originally in the imported file): the rotation
  -- period counts from the newest one.
  created_at  timestamptz not null,
  -- base64(nonce 12 ‖ wrapped data key 32 ‖ tag 16), associated data "keyring-file:v<version>".
  wrapped_key text not null check (wrapped_key ~ '^[A-Za-z0-9+/]+={0,2}$'),
  source      text not null check (source in ('created', 'imported')),
  stored_at   timestamptz not null default now()
);
