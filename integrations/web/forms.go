package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"

	"github.com/reins-oss/reins/incidents"
)

// The checklist and the postmortem are answered from the incident page
// with plain HTML forms (no JavaScript), through the same service calls as
// the Slack thread, so the same rules apply and each answer is on the
// timeline with who gave it. Forms are CSRF-safe three ways: the session
// cookie is SameSite=Lax (no cross-site POST carries it), each form holds
// a token only this server can mint for this signed-in person, and a
// browser's Origin or Sec-Fetch-Site naming another site is refused.

const maxFormBytes = 64 << 10

// csrfToken is the forms' token for the signed-in person: an HMAC of who
// they are and when their sign-in ends, under the session key.
func (h *Handler) csrfToken(s *session) string {
	m := hmac.New(sha256.New, h.cfg.Key)
	fmt.Fprintf(m, "csrf\x00%s\x00%d", s.User, s.Expires)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// formOK checks a form post: from this site, with this person's token.
func (h *Handler) formOK(w http.ResponseWriter, r *http.Request, s *session) bool {
	if h.cfg.Answers == nil {
		h.fail(w, r, http.StatusNotFound, "Not found", "Answers are not taken here.")
		return false
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		h.fail(w, r, http.StatusForbidden, "Refused", "This form was sent from another site. Open the incident in reins and answer there.")
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		if u, err := url.Parse(o); err != nil || u.Host != h.base.Host || u.Scheme != h.base.Scheme {
			h.fail(w, r, http.StatusForbidden, "Refused", "This form was sent from another site. Open the incident in reins and answer there.")
			return false
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, "Bad form", "The form could not be read: answers are limited to 64 KB.")
		return false
	}
	if !constEq(r.PostForm.Get("csrf"), h.csrfToken(s)) {
		h.fail(w, r, http.StatusForbidden, "Form expired",
			"This form is from an earlier sign-in or another page. Reload the incident and answer again.")
		return false
	}
	return true
}

// webActor is the signed-in person as the timeline and the audit name them.
func webActor(s *session) incidents.Actor {
	return incidents.Actor{Kind: incidents.ActorWeb, ID: s.User, Name: s.Name}
}

func (h *Handler) back(w http.ResponseWriter, r *http.Request, id int64, done, anchor string) {
	http.Redirect(w, r, fmt.Sprintf("/incidents/%d?done=%s#%s", id, done, anchor), http.StatusSeeOther)
}

func (h *Handler) startChecklist(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := h.pathID(w, r, s)
	if !ok || !h.formOK(w, r, s) {
		return
	}
	if _, err := h.cfg.Answers.StartChecklist(r.Context(), webActor(s), id); err != nil {
		h.domainError(w, r, s, err)
		return
	}
	h.back(w, r, id, "started", "checklist")
}

func (h *Handler) answerChecklist(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := h.pathID(w, r, s)
	if !ok || !h.formOK(w, r, s) {
		return
	}
	choice, ok := incidents.ParseChoice(r.PostForm.Get("choice"))
	if !ok {
		h.fail(w, r, http.StatusBadRequest, "Pick an answer", "Pick no impact, impact found, unknown or not applicable, then save.")
		return
	}
	if _, err := h.cfg.Answers.AnswerChecklist(r.Context(), webActor(s), id, r.PathValue("item"), choice,
		r.PostForm.Get("details")); err != nil {
		h.domainError(w, r, s, err)
		return
	}
	h.back(w, r, id, "checklist", "item-"+url.PathEscape(r.PathValue("item")))
}

func (h *Handler) answerPostmortem(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := h.pathID(w, r, s)
	if !ok || !h.formOK(w, r, s) {
		return
	}
	key := r.PathValue("key")
	if err := h.cfg.Answers.AnswerPostmortem(r.Context(), webActor(s), id, key, r.PostForm.Get("text")); err != nil {
		h.domainError(w, r, s, err)
		return
	}
	h.back(w, r, id, "postmortem", "q-"+key)
}
