-- Users, their devices, and the broker's own secrets.
-- Ids are compact numbers (base-36 in topics, DESIGN 7); a device is bound to one user at its
-- first login (DESIGN 8) and never moves to another.

CREATE TABLE users (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  login         text NOT NULL UNIQUE,
  password_hash text,                                  -- scrypt, see broker/auth/passwords.ts; null: token only
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
  id          bigint PRIMARY KEY,                      -- the MQTT client id, base-36
  user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  last_seen   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_user ON devices (user_id);

-- Secrets the broker makes for itself when none is configured (the token key), shared by every node.
CREATE TABLE broker_secrets (
  name   text PRIMARY KEY,
  value  bytea NOT NULL
);
