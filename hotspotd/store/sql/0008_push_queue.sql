-- Issue 3: a burst of purchases waits in line for the Daraja request budget, never refused.
-- `queued_at` set = the payment waits for its STK push (push_state stays 'sending', nothing
-- was sent); the push worker clears it, in the same transaction that claims the payment,
-- just before it sends. A restart keeps the line as it is.
ALTER TABLE payments ADD COLUMN queued_at REAL;
CREATE INDEX payments_push_queue ON payments (id) WHERE queued_at IS NOT NULL;
