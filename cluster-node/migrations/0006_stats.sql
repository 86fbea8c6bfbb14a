-- The chat statistics read a group's messages by time range (`storage::stats`): without this index every
-- range would scan the group's whole history.
CREATE INDEX messages_by_chat_time ON messages (chat_id, created_at);
