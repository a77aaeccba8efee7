-- Consent (API.md "Consent (GDPR)") and the salts that make log pseudonyms erasable.

-- One row per decision, never updated: the newest row of an (owner, purpose) is the decision in
-- force, the older rows are its history (exported with the caller's data, deleted by DELETE /v1/me).
create table consents (
  id      bigserial primary key,
  owner   text not null,
  purpose text not null check (purpose in ('processing', 'message-retention')),
  version text not null,
  granted boolean not null,
  at      timestamptz not null default now()
);
-- The decision in force is one index probe (newest id of the pair), also from the trigger below.
create index consents_owner_purpose on consents (owner, purpose, id desc);

-- Keys for one purpose other than encryption (`log-subjects`: the HMAC key of the log pseudonyms):
-- 32 random bytes made once, stored only encrypted by the keyring (src/crypto/purpose-keys.ts), so
-- every node with the same keyring reads the same key, and the rewrap job moves it with the secrets.
create table purpose_keys (
  purpose    text primary key check (purpose ~ '^[a-z][a-z0-9-]{0,63}$'),
  ciphertext text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- Logs name a caller by HMAC(key, salt ‖ sub) (src/observability/subjects.ts). Deleting the caller's
-- salt (DELETE /v1/me) leaves every line written for them with a hash nobody can compute again.
create table log_salts (
  sub        text primary key,
  salt       bytea not null,
  created_at timestamptz not null default now()
);

-- With `message-retention` withdrawn, a message keeps its text only while it may still be sent: the
-- moment it ends (sent, or failed), the text is blanked, whichever statement ends it (delivery's
-- batches, queue expiry, a dead letter). The full-text column is generated from the text and
-- empties with it. Texts already ended when the consent is withdrawn are blanked by that request.
create function messages_blank_without_retention() returns trigger language plpgsql as $$
begin
  if new.text <> '' and coalesce((
    select not c.granted from consents c
    where c.owner = new.owner and c.purpose = 'message-retention'
    order by c.id desc limit 1), false) then
    new.text := '';
  end if;
  return new;
end
$$;

create trigger messages_blank_without_retention
  before insert or update of status on messages
  for each row when (new.status in ('sent', 'failed'))
  execute function messages_blank_without_retention();
