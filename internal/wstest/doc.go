// Package wstest holds what the module's tests share to talk to a
// WebSocket server the way a client would.
package wstest
