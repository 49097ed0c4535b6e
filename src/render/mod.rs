//! Manifest rendering from a checkout.
