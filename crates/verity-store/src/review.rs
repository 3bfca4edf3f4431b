//! LESC review work on stored queries: the specialist queue in urgency order, assignment,
//! notes, confirmations, corrections and overrides (as query events), and the reads behind the
//! subject view.
