#pragma once
// The process's heap policy. glibc gives the top of its heap back to the system once 128 KiB there
// are free (a threshold it then moves with the sizes it has mapped). A broker whose subscriber
// queues hold thousands of messages allocates and frees near that top all the time: every trim is
// a system call, and every page given back faults in again with the next message. Measured on
// 1->1 QoS 0 with 4 KB payloads: 3 or 10 us of broker CPU a message, depending on whether the
// queue happened to run deep. The daemon therefore keeps up to 1 MiB free at the top, and maps
// only allocations of 512 KiB and more (those go back to the system as soon as they are freed).
//
// Thread safety: call once at start-up, before other threads run.

namespace ebus {

void tune_heap() noexcept;

}  // namespace ebus
