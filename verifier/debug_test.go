package verifier

import (
	"os"

	"github.com/emiago/sipgo/sip"
)

func init() {
	if os.Getenv("TRUNKPASS_SIPDEBUG") != "" {
		sip.SIPDebug = true
	}
}
