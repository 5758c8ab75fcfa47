-- Conversations, their members and their messages (issue 3).
-- DESIGN 2: every conversation has its own sequence; (conversation_id, seq) identifies a message.
-- A group's id is its conversation's id.

CREATE SEQUENCE activity_cursor;   -- orders changes for the conversation-list sync

CREATE TABLE conversations (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  is_group    boolean NOT NULL,
  user_low    bigint REFERENCES users (id),        -- 1:1: the two users, user_low <= user_high
  user_high   bigint REFERENCES users (id),
  last_seq    bigint NOT NULL DEFAULT 0,           -- seq = last_seq + 1, assigned under this row's lock
  activity    bigint NOT NULL DEFAULT nextval('activity_cursor'),
  UNIQUE (user_low, user_high),
  CHECK (is_group = (user_low IS NULL))
);

CREATE TABLE groups (
  id          bigint PRIMARY KEY REFERENCES conversations (id),
  name        text NOT NULL,
  created_by  bigint NOT NULL REFERENCES users (id),
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Both users of a 1:1 conversation and every member of a group, with their read state.
CREATE TABLE members (
  conversation_id  bigint NOT NULL REFERENCES conversations (id),
  user_id          bigint NOT NULL REFERENCES users (id),
  role             smallint NOT NULL DEFAULT 0,      -- wmq.Role: 0 member, 1 admin, 2 owner
  joined_seq       bigint NOT NULL DEFAULT 0,        -- sees messages with seq > joined_seq ...
  left_seq         bigint,                           -- ... and <= left_seq once gone (null: a member)
  delivered_seq    bigint NOT NULL DEFAULT 0,
  read_seq         bigint NOT NULL DEFAULT 0,
  activity         bigint NOT NULL DEFAULT nextval('activity_cursor'),
  PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX members_user ON members (user_id);

CREATE TABLE messages (
  conversation_id  bigint NOT NULL REFERENCES conversations (id),
  seq              bigint NOT NULL,
  sender_id        bigint NOT NULL REFERENCES users (id),
  client_msg_id    bytea,                            -- null for system messages
  sent_at          bigint NOT NULL,                  -- ms since the epoch
  content          bytea NOT NULL,                   -- wmq.Content, protobuf bytes; empty once recalled
  recalled         boolean NOT NULL DEFAULT false,
  PRIMARY KEY (conversation_id, seq)
);
-- DESIGN 3: a repeat of (sender, client_msg_id) finds the first.
CREATE UNIQUE INDEX messages_idempotency ON messages (sender_id, client_msg_id);

-- "Delete for me": hidden from one user's history.
CREATE TABLE deletions (
  user_id          bigint NOT NULL REFERENCES users (id),
  conversation_id  bigint NOT NULL,
  seq              bigint NOT NULL,
  PRIMARY KEY (user_id, conversation_id, seq)
);
