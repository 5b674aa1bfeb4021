package otelmetrics

// Observe is the Recorder's event hook, for the tests that feed it events no bulkhead
// would send.
var Observe = (*Recorder).observe
