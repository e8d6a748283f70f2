//! Runs plays: hosts in parallel, tasks in order, handlers, serial batches.
