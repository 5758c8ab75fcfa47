-- Profiles, privacy settings, contacts and blocking (issue 7).

-- Every user has a profile and privacy settings: columns with defaults, so no user lacks them.
ALTER TABLE users
  ADD COLUMN display_name       text NOT NULL DEFAULT '',
  ADD COLUMN avatar             text NOT NULL DEFAULT '',      -- a reference: URL or object key
  ADD COLUMN status             text NOT NULL DEFAULT '',
  ADD COLUMN profile_time       bigint NOT NULL DEFAULT 0,     -- ms since the epoch of the last profile change
  ADD COLUMN hidden_from_search boolean NOT NULL DEFAULT false,
  ADD COLUMN start_chat         smallint NOT NULL DEFAULT 0,   -- wmq.Audience: who may start a 1:1 conversation
  ADD COLUMN add_to_group       smallint NOT NULL DEFAULT 0,   -- wmq.Audience: who may add the user to a group
  ADD COLUMN contact_version    bigint NOT NULL DEFAULT 0;     -- the user's contact changes so far: 1, 2, 3, ...

-- Search by prefix of the login or of the display name (LIKE 'prefix%' needs the pattern operators).
CREATE INDEX users_login_prefix ON users (login text_pattern_ops);
CREATE INDEX users_display_name_prefix ON users (lower(display_name) text_pattern_ops);

-- One user's view of one relationship: the owner's row is shown to the owner only. A contact is
-- two rows in state 1; a pending request is a row in state 2 (the asker's) and one in state 3.
-- Rows stay when a relationship ends (state 0) so a device syncing since a version learns of it.
CREATE TABLE contacts (
  owner_id    bigint NOT NULL REFERENCES users (id),
  other_id    bigint NOT NULL REFERENCES users (id),
  state       smallint NOT NULL DEFAULT 0,     -- wmq.ContactState: 0 none, 1 contact, 2 request sent, 3 request received
  note        text NOT NULL DEFAULT '',        -- the pending request's note
  blocked     boolean NOT NULL DEFAULT false,  -- the owner blocks the other
  version     bigint NOT NULL,                 -- the owner's contact_version when this row last changed
  changed_at  bigint NOT NULL,                 -- ms since the epoch
  PRIMARY KEY (owner_id, other_id),
  CHECK (owner_id <> other_id)
);
CREATE INDEX contacts_sync ON contacts (owner_id, version);
