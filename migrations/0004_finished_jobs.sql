-- A job leaves 'pending' when its result is stored (in the same
-- transaction, from now on), so the partial index of unfinished jobs holds
-- only the work still to do instead of every job ever run. Jobs that
-- already have their result are marked here once.
UPDATE jobs SET status = 'done'
 WHERE status IN ('pending', 'running')
   AND EXISTS (SELECT 1 FROM test_results r WHERE r.id = jobs.id);
