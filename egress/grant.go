// Package egress is how a step's HTTP requests leave the host: the grants
// that allow them (origins, methods, private address ranges), the dialer
// that checks the address actually dialed, the redirect loop that checks
// every hop, and the limits on what comes back. Nothing here trusts the
// guest: every request is checked as if it were hostile, and every refusal
// is an abi.HostError with a cause a step can act on, never a panic.
//
// It imports only the standard library and abi.
package egress

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Origin is one allow.hosts entry: a scheme, a host (exact, or "*." and a
// suffix that matches strict subdomains only) and a port, with optional
// methods.
type Origin struct {
	Scheme string // "http" or "https"
	// Host is lower case; with Wildcard set it is the suffix after "*.".
	Host     string
	Wildcard bool
	Port     int
	// Methods, upper case; empty allows every method.
	Methods []string
}

// ParseOrigin reads an allow.hosts entry such as "https://api.openai.com",
// "http://localhost:8080" or "https://*.example.com:8443". It refuses a
// path, a query, userinfo, a scheme other than http and https, and a "*"
// anywhere but a leading "*." label.
func ParseOrigin(s string, methods []string) (Origin, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return Origin{}, fmt.Errorf("%q: want scheme://host[:port], such as https://api.example.com", s)
	}
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" {
		return Origin{}, fmt.Errorf("%q: scheme %q is not http or https", s, scheme)
	}
	rest = strings.TrimSuffix(rest, "/")
	if strings.ContainsAny(rest, "/?#@\\") {
		return Origin{}, fmt.Errorf("%q: an origin has no path, query, fragment or userinfo", s)
	}
	o := Origin{Scheme: scheme}
	host, port := rest, ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		host, port = rest[:i], rest[i+1:]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if port == "" {
		o.Port = defaultPort(scheme)
	} else {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return Origin{}, fmt.Errorf("%q: bad port %q", s, port)
		}
		o.Port = p
	}
	host = strings.ToLower(host)
	if suffix, ok := strings.CutPrefix(host, "*."); ok {
		o.Wildcard, host = true, suffix
	}
	if host == "" || strings.Contains(host, "*") {
		return Origin{}, fmt.Errorf("%q: a host may start with \"*.\" and hold no other \"*\"", s)
	}
	if _, err := netip.ParseAddr(host); err == nil && o.Wildcard {
		return Origin{}, fmt.Errorf("%q: an IP address takes no wildcard", s)
	}
	o.Host = host
	for _, m := range methods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "" || strings.ContainsFunc(m, func(r rune) bool { return r < 'A' || r > 'Z' }) {
			return Origin{}, fmt.Errorf("%q: bad method %q", s, m)
		}
		o.Methods = append(o.Methods, m)
	}
	return o, nil
}

func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// String returns the origin as it is written in a manifest.
func (o Origin) String() string {
	host := o.Host
	if o.Wildcard {
		host = "*." + host
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	s := o.Scheme + "://" + host
	if o.Port != defaultPort(o.Scheme) {
		s += ":" + strconv.Itoa(o.Port)
	}
	if len(o.Methods) > 0 {
		s += " (" + strings.Join(o.Methods, ", ") + ")"
	}
	return s
}

// matchHost reports whether host (lower case, no brackets) is o's host.
func (o Origin) matchHost(host string) bool {
	if !o.Wildcard {
		return host == o.Host
	}
	return strings.HasSuffix(host, "."+o.Host) && len(host) > len(o.Host)+1
}

// Allows reports whether o allows method on u (scheme, host and port).
func (o Origin) Allows(method string, u *url.URL) bool {
	return o.matches(u) && (len(o.Methods) == 0 || slices.Contains(o.Methods, method))
}

// matches reports whether u is at o, whatever the method.
func (o Origin) matches(u *url.URL) bool {
	scheme, host, port, ok := target(u)
	return ok && scheme == o.Scheme && port == o.Port && o.matchHost(host)
}

// Covers reports whether every URL at p is at o too (p's methods aside):
// the same scheme and port, and p's host o's or, for a wildcard o, one of
// its subdomains (a wildcard p only under a wildcard o).
func (o Origin) Covers(p Origin) bool {
	if o.Scheme != p.Scheme || o.Port != p.Port {
		return false
	}
	switch {
	case !o.Wildcard:
		return !p.Wildcard && p.Host == o.Host
	case p.Wildcard:
		return p.Host == o.Host || strings.HasSuffix(p.Host, "."+o.Host)
	}
	return o.matchHost(p.Host)
}

// target splits u into the scheme, lower-case host and port a request to it
// dials.
func target(u *url.URL) (scheme, host string, port int, ok bool) {
	scheme = strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", "", 0, false
	}
	host = strings.ToLower(u.Hostname())
	if host == "" {
		return "", "", 0, false
	}
	port = defaultPort(scheme)
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", "", 0, false
		}
		port = n
	}
	return scheme, host, port, true
}

// sameOrigin reports whether a and b have the scheme, host and port of one
// origin (what a cross-origin redirect hop drops credentials on).
func sameOrigin(a, b *url.URL) bool {
	as, ah, ap, aok := target(a)
	bs, bh, bp, bok := target(b)
	return aok && bok && as == bs && ah == bh && ap == bp
}

// ParsePrivate reads an allow.private entry: a CIDR prefix ("10.1.2.0/24",
// "fd00::/8") or one address ("127.0.0.1", a /32 or /128).
func ParsePrivate(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address range such as 10.0.0.0/8", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or an address range", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
