-- Issue 3 §3: a batch of sends stored without reading first.
-- The writer plans a batch from what it read for the batches before it: each conversation's active
-- members, and the verdict of each 1:1 pair (blocks, "contacts only"). Its write then checks, in
-- the same statement, that none of that has changed since: a conversation's members by
-- members_version, a user's blocks and contacts by contact_version (003) and their own setting by
-- start_chat. A change anywhere (this node, another node, SQL by hand) makes the write fail with
-- SQLSTATE WQ001, so nothing of the batch is stored, and the writer reads and plans it again.

ALTER TABLE conversations ADD COLUMN members_version bigint NOT NULL DEFAULT 0;

-- Who is an active member changes by a new row or by left_seq (a member leaving, or coming back):
-- a trigger, so that no way of changing members can forget it. Receipts and sends update members'
-- read state, not left_seq, and do not fire it.
CREATE FUNCTION members_changed () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE conversations SET members_version = members_version + 1
   WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.conversation_id ELSE NEW.conversation_id END;
  RETURN NULL;
END $$;

CREATE TRIGGER members_changed AFTER INSERT OR DELETE OR UPDATE OF left_seq, conversation_id, user_id ON members
  FOR EACH ROW EXECUTE FUNCTION members_changed();

-- Called by the write with whether its plan still holds: raises when it does not (the statement,
-- and so everything the batch wrote, is rolled back); returns false otherwise.
CREATE FUNCTION send_plan_outdated (outdated boolean) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF outdated THEN
    RAISE EXCEPTION 'the members or the privacy a send batch was planned with have changed' USING ERRCODE = 'WQ001';
  END IF;
  RETURN false;
END $$;
