//! Argo CD style include/exclude globs.
