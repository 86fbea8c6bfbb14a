-- The highest data term this copy promised to a root that claimed it (DESIGN §4 "One writer"): a root
-- writes nothing until a majority of the voters has promised its term, and picks its term above every
-- promise its tree reports, so a later writer always writes under a higher term than an earlier one.
-- Per node, never replicated (not part of the content hash).
ALTER TABLE system_state ADD COLUMN promised INTEGER NOT NULL DEFAULT 0;
