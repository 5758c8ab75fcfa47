-- The send path's write (broker/storage/messages.ts, writePlan) inserts every message of a batch in
-- one statement. The foreign keys of messages made Postgres run two trigger queries per row, half of
-- that statement's time (EXPLAIN ANALYZE of a batch of 200: 3.7 of 8.1 ms; BENCHMARKS.md). They
-- guarded nothing the broker can do: no user or conversation is ever deleted, and a message is only
-- inserted for a conversation row the same statement has just updated, by a sender the plan found
-- among its members (members keeps its foreign keys).
ALTER TABLE messages DROP CONSTRAINT messages_conversation_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_sender_id_fkey;
