//! act-sim: simulated ALOHA (see issue "act-sim"); not built yet.
