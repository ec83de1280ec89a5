-- The lake's two PostgreSQL roles, least privilege; run as a superuser (or a DBA role with
-- CREATEROLE) in the lake's database. scripts/catalog.sh runs it on every start of the local
-- catalog; for a managed PostgreSQL run it once yourself:
--   psql "host=… dbname=netpulse user=admin" -v writer_password=… -v reader_password=… -f scripts/catalog-roles.sql
-- It is idempotent, and it hands the metadata schemas of a lake made before the roles (owned by
-- the old catalog superuser) to the writer.
--
--   netpulse_writer  workers, maintenance, reset: owns the lake's metadata schemas (creates them)
--   netpulse_reader  the CLI's report/query/status, the dashboard, your own tools: SELECT only
-- Neither is a superuser or has CREATEROLE, pg_read_server_files or pg_execute_server_program,
-- so a statement that reaches PostgreSQL through DuckDB cannot read host files or run programs.
\set ON_ERROR_STOP on

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'netpulse_writer') THEN CREATE ROLE netpulse_writer; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'netpulse_reader') THEN CREATE ROLE netpulse_reader; END IF;
END $$;
ALTER ROLE netpulse_writer LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT PASSWORD :'writer_password';
ALTER ROLE netpulse_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT PASSWORD :'reader_password';
-- A third wall behind DuckDB's read-only attachment and the reader role's grants.
ALTER ROLE netpulse_reader SET default_transaction_read_only = on;

DO $$
DECLARE
  lake record;
  object record;
BEGIN
  -- Nobody else connects, creates or makes temporary tables here (DuckLake's writes use temporary tables).
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO netpulse_writer', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO netpulse_reader', current_database());
  REVOKE ALL ON SCHEMA public FROM PUBLIC;

  -- Lakes made before the roles: their metadata schemas (those holding ducklake_metadata) and
  -- everything in them become the writer's.
  FOR lake IN SELECT n.nspname FROM pg_namespace n
      WHERE n.nspowner <> 'netpulse_writer'::regrole
        AND EXISTS (SELECT FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = 'ducklake_metadata') LOOP
    EXECUTE format('ALTER SCHEMA %I OWNER TO netpulse_writer', lake.nspname);
    FOR object IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = lake.nspname AND c.relkind IN ('r', 'p', 'v') LOOP
      EXECUTE format('ALTER %s %I.%I OWNER TO netpulse_writer', CASE object.relkind WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END, lake.nspname, object.relname);
    END LOOP;
  END LOOP;

  -- The reader reads every schema the writer owns, now and later (DuckLake creates tables as it goes).
  FOR lake IN SELECT nspname FROM pg_namespace WHERE nspowner = 'netpulse_writer'::regrole LOOP
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO netpulse_reader', lake.nspname);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO netpulse_reader', lake.nspname);
  END LOOP;
END $$;
ALTER DEFAULT PRIVILEGES FOR ROLE netpulse_writer GRANT USAGE ON SCHEMAS TO netpulse_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE netpulse_writer GRANT SELECT ON TABLES TO netpulse_reader;
