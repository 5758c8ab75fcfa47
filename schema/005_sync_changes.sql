-- Issue 3 §6: a device whose broker session is gone (embedded broker restarted, queue expired)
-- recovers everything through sync, recalls and its user's deletions included: the RecallEvent and
-- DeletedEvent that its session would have brought are gone with it. Each recall and deletion
-- keeps the activity cursor it was made at, so the conversation-list sync can name what changed
-- after a device's cursor (ConversationSummary.recalled and .deleted).
ALTER TABLE messages ADD COLUMN recalled_cursor bigint;            -- null: not recalled, or before 005
CREATE INDEX messages_recalled ON messages (conversation_id, recalled_cursor) WHERE recalled_cursor IS NOT NULL;
ALTER TABLE deletions ADD COLUMN cursor bigint NOT NULL DEFAULT 0;  -- 0: before 005
CREATE INDEX deletions_cursor ON deletions (user_id, conversation_id, cursor);
