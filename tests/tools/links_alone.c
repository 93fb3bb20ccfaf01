// SPDX-License-Identifier: MIT
/* Linked with one layer of lb/ whole and only the layers below it
 * (tests/meson.build): that it links is the test. */
int main(void)
{
	return 0;
}
