package pgstore

// MigrateTo brings a schema to an older version than this one's, as an
// older 12fa left it.
var MigrateTo = migrate
