//! Health assessment of live objects (Argo CD / kstatus compatible).
//! INTERFACE STUB — replaced by the health helper.
