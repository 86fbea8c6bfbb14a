-- The voter configuration (DESIGN §4): the newest configuration entry this database applied, kept
-- beside the log so a node knows whether it votes without scanning the log. Empty until the first
-- writer that accepts writes on this database writes one.
CREATE TABLE voters (
    id     INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    epoch  INTEGER NOT NULL,
    voters TEXT    NOT NULL
) STRICT;
