-- Delivery bookkeeping on the outbox (src/delivery).
-- publish_seq: bumped whenever a row is rescheduled (pacing, flood wait, retry, park) or claimed by the
--   embedded consumer. Every broker copy carries the seq it was published with, so a copy left over
--   from an older schedule is recognised and acked without a send; the row stays the truth.
-- retries: transient failures so far (not flood waits, not parking), bounded by the retry limit.
alter table messages add column publish_seq integer not null default 0;
alter table messages add column retries integer not null default 0;

-- The relay reads due, unpublished rows in schedule order; rows parked for minutes or hours (open
-- breaker, long flood wait) must not be rescanned by every 250 ms poll.
create index messages_relay on messages (available_at, created_at) where published_at is null and status = 'queued';
