-- The replication log: every committed write, kept on the writer and on every replica, so whichever
-- node holds the data can bring another copy up to date from any epoch, across restarts and failovers.
CREATE TABLE log (
    epoch INTEGER PRIMARY KEY,
    term  INTEGER NOT NULL,
    entry TEXT    NOT NULL
) STRICT;
