package manifest

import (
	"fmt"
	"strings"
)

// ActionKind is what happens after an extension moves to a new version.
type ActionKind string

const (
	ActionNone    ActionKind = "none"
	ActionReboot  ActionKind = "reboot"
	ActionService ActionKind = "service"
)

// Action is a parsed update action: "none", "reboot" or
// "service: UNIT[, UNIT...]".
type Action struct {
	Kind  ActionKind
	Units []string
}

func (a Action) String() string {
	if a.Kind == ActionService {
		return "service: " + strings.Join(a.Units, ", ")
	}
	if a.Kind == "" {
		return string(ActionNone)
	}
	return string(a.Kind)
}

// ParseAction parses the update syntax shared by manifests and the image's
// UPDATE= field. An empty string is "none". Units without a type suffix get
// ".service".
func ParseAction(s string) (Action, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "none":
		return Action{Kind: ActionNone}, nil
	case "reboot":
		return Action{Kind: ActionReboot}, nil
	}
	kind, rest, ok := strings.Cut(s, ":")
	if !ok || strings.ToLower(strings.TrimSpace(kind)) != "service" {
		return Action{}, fmt.Errorf("unknown update action %q (want none, reboot or \"service: UNIT[, UNIT...]\")", s)
	}
	var units []string
	for _, u := range strings.Split(rest, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		if strings.ContainsAny(u, " \t/") {
			return Action{}, fmt.Errorf("invalid unit name %q in update action", u)
		}
		if !strings.Contains(u, ".") {
			u += ".service"
		}
		if !strings.HasSuffix(u, ".service") || u == ".service" {
			return Action{}, fmt.Errorf("update action %q: %s is not a .service unit: only services are restarted (a target or other unit could stop the host)", s, u)
		}
		units = append(units, u)
	}
	if len(units) == 0 {
		return Action{}, fmt.Errorf("update action %q names no unit", s)
	}
	return Action{Kind: ActionService, Units: units}, nil
}
