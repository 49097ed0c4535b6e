//! Materialising a commit tree as a plain directory.
