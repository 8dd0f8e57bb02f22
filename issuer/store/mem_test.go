package store_test

import (
	"testing"

	"github.com/trunkpass/trunkpass/issuer/store"
	"github.com/trunkpass/trunkpass/issuer/store/storetest"
)

func TestMemoryContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return store.NewMemory() })
}
