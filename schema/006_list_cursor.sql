-- Issue 3 §6: the conversation-list cursor can no longer skip a change.
-- The cursor was a sequence value taken inside each writing transaction. Sequence values are not
-- committed in the order they are taken: a list read between two commits could hand a device a
-- cursor past a change that committed a moment later (another node's batch, a receipt beside a
-- batch), and the device never listed it. Now every change keeps the transaction it was made in,
-- and the cursor is the snapshot the list was read at (PROTOCOL.md, SyncConversations): a later
-- list returns what that snapshot did not see, whenever it committed.
ALTER TABLE conversations ADD COLUMN changed_in xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE members ADD COLUMN changed_in xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE messages ADD COLUMN recalled_in xid8;                  -- null: not recalled
UPDATE messages SET recalled_in = pg_current_xact_id() WHERE recalled;
ALTER TABLE deletions ADD COLUMN deleted_in xid8 NOT NULL DEFAULT pg_current_xact_id();

DROP INDEX messages_recalled;
DROP INDEX deletions_cursor;
ALTER TABLE messages DROP COLUMN recalled_cursor;
ALTER TABLE deletions DROP COLUMN cursor;
ALTER TABLE conversations DROP COLUMN activity;
ALTER TABLE members DROP COLUMN activity;
DROP SEQUENCE activity_cursor;
CREATE INDEX messages_recalled ON messages (conversation_id) WHERE recalled_in IS NOT NULL;
