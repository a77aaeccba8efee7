-- messages_unpublished (001) indexed unpublished queued rows by created_at; since 002 the relay reads
-- them through messages_relay (available_at, created_at), and no query orders them by created_at
-- alone. Every insert and every reschedule of a message still wrote an entry into it (issue 18:
-- index entries per message).
drop index if exists messages_unpublished;
