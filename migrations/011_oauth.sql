-- OAuth connections (API.md "OAuth platforms"): one row per authorize URL handed out. The state is
-- single use and lives 10 minutes; only its SHA-256 is stored, so a database read cannot finish
-- someone's authorization. The PKCE verifier is a connection secret (encrypted), not stored here.
create table oauth_states (
  state_hash    text primary key,
  connection_id uuid not null references connections (id) on delete cascade,
  platform      text not null,
  -- Where the browser goes after the callback (the caller's redirectUri, or the console).
  return_to     text,
  expires_at    timestamptz not null,
  used_at       timestamptz
);
create index oauth_states_connection on oauth_states (connection_id);
