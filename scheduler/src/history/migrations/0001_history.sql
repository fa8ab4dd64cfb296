-- Every event, one row each, in a table partitioned by day (the writer adds each day's
-- partition; retention drops whole days). An event's id is (source, at, seq): its source and
-- the source stream's entry id "<ms>-<seq>", whose ms is `at`. Text is compared byte-wise
-- (COLLATE "C"), whatever the database's locale. Fixed-width columns come first, so no row
-- pays alignment padding between them and the text.
CREATE TABLE events (
    at timestamptz NOT NULL,
    seq integer NOT NULL,
    source text COLLATE "C" NOT NULL,
    type text COLLATE "C" NOT NULL,
    -- lower-cased
    recipient text COLLATE "C" NOT NULL,
    -- NULL when the event carries no data; json (its text), not jsonb: a fifth smaller, and
    -- read back whole, never searched by index
    data json
) PARTITION BY RANGE (at);

-- Addresses and source names are indexed by their 8-byte hash, not their text. Queries compare
-- the text too, so a hash collision costs a row read, never a wrong answer. The recipient index
-- holds the hash alone: an address's events share one key, which B-tree deduplication stores
-- once (about 11 bytes per event instead of 39 with the time beside it); a timeline sorts its
-- address's rows. A source's events are many, so its index keeps the time for paging.
CREATE INDEX events_source ON events (hashtextextended(source, 0), at);
CREATE INDEX events_recipient ON events (hashtextextended(recipient, 0));
CREATE INDEX events_at ON events (at);

-- Campaigns and messages, recorded when their first event is written: what a report needs
-- after Redis has expired them. No recipient list and no body.
CREATE TABLE sources (
    name text COLLATE "C" PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('campaign', 'message')),
    created_at timestamptz,
    summary jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Each template version a recorded campaign or message used.
CREATE TABLE templates (
    id text COLLATE "C" NOT NULL,
    version bigint NOT NULL,
    first_used timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, version)
);
