package api

import (
	"fmt"
	"net/http"
	"net/url"
)

// slackRedirect sends a page's Slack link on to the incident channel once it exists.
func (h *Handler) slackRedirect(w http.ResponseWriter, r *http.Request) {
	inc, ok := h.pathIncident(w, r)
	if !ok {
		return
	}
	id := inc.ID
	if why, err := h.Incidents.NoChannelReason(r.Context(), inc); err != nil {
		WriteDomainError(w, h.Log, r, err)
		return
	} else if why != "" {
		WriteError(w, http.StatusNotFound, why)
		return
	}
	if inc.SlackChannelID == "" {
		w.Header().Set("Retry-After", "5")
		WriteError(w, http.StatusServiceUnavailable,
			fmt.Sprintf("the Slack channel of incident #%d is not created yet (Slack may be slow or down): retry in a few seconds", id))
		return
	}
	http.Redirect(w, r, "https://slack.com/app_redirect?channel="+url.QueryEscape(inc.SlackChannelID), http.StatusFound)
}
