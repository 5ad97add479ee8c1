package alerts

import (
	"net/http"

	"github.com/reins-oss/reins/incidents"
)

// ParseGrafana parses a Grafana alerting webhook contact point body (version
// "1"): Alertmanager's shape plus orgId, values, silenceURL, dashboardURL and
// panelURL per alert. The signature, when configured, is checked by the handler.
func ParseGrafana(body []byte, _ http.Header, opts Options) ([]incidents.Alert, error) {
	var m amMessage
	if err := decode(body, &m, false); err != nil {
		return nil, err
	}
	if m.Version != "1" {
		hint := ""
		if m.Version == "4" {
			hint = " (this looks like Alertmanager: use /webhooks/alertmanager)"
		}
		return nil, incidents.Errorf(incidents.EINVALID, "version: want \"1\" (Grafana webhook), got %q%s", m.Version, hint)
	}
	return convertAM(&m, SourceGrafana, opts)
}
