package serve

import (
	"fmt"
	"net/http"
)

// answerLink answers a question from a notification's button. The phone
// posts the signed link itself (ntfy's http action, from its app or web
// page: any origin, no cookie), so the signature is the authority: a
// forged, altered or expired link is refused, and so is any link once the
// question is answered.
func (s *Server) answerLink(w http.ResponseWriter, r *http.Request) {
	// ntfy's web app posts with fetch(): it must be allowed to read the
	// answer, or it shows the tap as failed.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "POST")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.cfg.Links == nil {
		http.Error(w, "serve: answer links are off (12fa serve --public-url turns them on)", http.StatusNotFound)
		return
	}
	id := r.PathValue("id")
	answer, err := s.cfg.Links.Verify(id, r.URL.Query(), s.cfg.Now())
	if err != nil {
		http.Error(w, "serve: "+err.Error(), http.StatusForbidden)
		return
	}
	v, release, err := s.cfg.Open()
	if err != nil {
		http.Error(w, "serve: the store cannot be read now", http.StatusServiceUnavailable)
		return
	}
	defer release()
	q, err := v.Respond(id, answer)
	if err != nil {
		http.Error(w, "serve: answer not taken: "+err.Error(), respondStatus(err))
		return
	}
	s.cfg.Log.Info("answered from a notification", "question", q.ID, "run", q.Run)
	fmt.Fprintf(w, "answered %s\n", q.ID)
}
