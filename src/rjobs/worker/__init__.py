"""Workers: claim jobs from the store and run each in a child process."""
