package postgres

// Migrations exposes the schema's steps to the tests.
var Migrations = migrations
