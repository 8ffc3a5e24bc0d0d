package grpcapi

// WaitingPolls returns how many Consume calls are waiting for data, so
// tests can act once a long poll is in place instead of sleeping.
func WaitingPolls(s *Server) int { return int(s.polls.Load()) }
