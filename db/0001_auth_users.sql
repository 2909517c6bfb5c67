-- GoTrue's subset: password users and rotating refresh tokens. Only the server's own connection
-- role touches these tables; anon/authenticated get no privilege on them.

CREATE SCHEMA IF NOT EXISTS extensions;
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA extensions;

CREATE TABLE IF NOT EXISTS auth.users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  aud text NOT NULL DEFAULT 'authenticated',
  role text NOT NULL DEFAULT 'authenticated',
  -- Stored lower-case so that uniqueness is case-insensitive, as GoTrue's is.
  email text NOT NULL UNIQUE CHECK (email = lower(email)),
  encrypted_password text NOT NULL,
  email_confirmed_at timestamptz,
  raw_app_meta_data jsonb NOT NULL DEFAULT '{"provider": "email", "providers": ["email"]}',
  raw_user_meta_data jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  last_sign_in_at timestamptz
);

-- One row per issued refresh token. A session is the chain of tokens sharing session_id; using a
-- token revokes it and issues its child (rotation). Presenting a revoked token revokes the whole
-- session (reuse detection), as GoTrue does.
CREATE TABLE IF NOT EXISTS auth.refresh_tokens (
  id bigserial PRIMARY KEY,
  token text NOT NULL UNIQUE,
  user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  session_id uuid NOT NULL,
  parent text,
  revoked boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS refresh_tokens_session_id_idx ON auth.refresh_tokens (session_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_user_id_idx ON auth.refresh_tokens (user_id);

-- Password hashing through pgcrypto wherever the extension lives (a database may already have it
-- in another schema). bcrypt ('bf'), as GoTrue.
DO $$
DECLARE
  ext_schema text;
BEGIN
  SELECT n.nspname INTO ext_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'pgcrypto';
  EXECUTE format($f$
    CREATE OR REPLACE FUNCTION auth.hash_password(password text) RETURNS text
      LANGUAGE sql VOLATILE SET search_path = %1$I AS
      'SELECT crypt(password, gen_salt(''bf''))'
  $f$, ext_schema);
  EXECUTE format($f$
    CREATE OR REPLACE FUNCTION auth.check_password(password text, hash text) RETURNS boolean
      LANGUAGE sql STABLE SET search_path = %1$I AS
      'SELECT crypt(password, hash) = hash'
  $f$, ext_schema);
END
$$;
REVOKE ALL ON FUNCTION auth.hash_password(text), auth.check_password(text, text) FROM PUBLIC;
