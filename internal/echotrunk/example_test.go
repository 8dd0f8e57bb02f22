package echotrunk_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/trunkpass/trunkpass/internal/echotrunk"
)

// A trunk answering sip:echo@… on loopback UDP and TCP, as the demo runs it.
func Example() {
	trunk, err := echotrunk.New(echotrunk.Options{AnswerDelay: time.Second})
	if err != nil {
		panic(err)
	}
	defer trunk.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tcp, _ := net.Listen("tcp", "127.0.0.1:0")
	udp, _ := net.ListenPacket("udp", tcp.Addr().String())
	go trunk.ServeTCP(tcp)
	go trunk.ServeUDP(udp)
	go func() { <-ctx.Done(); tcp.Close(); udp.Close() }()

	// Point the edge's upstream at sip:<tcp address>;transport=tcp; every
	// call to sip:echo@… is answered and its audio sent back.
	fmt.Printf("%+v\n", trunk.Stats())
	// Output: {Invites:0 Answered:0 Active:0 Ended:0 Canceled:0 Rejected:0 Reinvites:0 Registers:0 RTPReceived:0 RTPSent:0}
}
