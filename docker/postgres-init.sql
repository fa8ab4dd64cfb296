-- Run once by the postgres image when its volume is new: a read-only role for Grafana's
-- "Sluice history" data source. The scheduler (role sluice) creates the tables later; the
-- default privileges let grafana read them, and nothing else. Change the password.
CREATE ROLE grafana LOGIN PASSWORD 'grafana-change-me';
GRANT CONNECT ON DATABASE sluice TO grafana;
GRANT USAGE ON SCHEMA public TO grafana;
ALTER DEFAULT PRIVILEGES FOR ROLE sluice IN SCHEMA public GRANT SELECT ON TABLES TO grafana;
