//! C ABI over act-core (see issue "bindings"); not built yet.
